"""The Stack Registry: NNO-authored, versioned stack templates (provisioning-stacks.md §7)."""
