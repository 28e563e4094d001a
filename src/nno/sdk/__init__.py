"""The feature SDK: the contract feature packages and stacks share with NNO."""
