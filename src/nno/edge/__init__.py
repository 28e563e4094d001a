"""The local cloud: the state of the resources the `local` provider creates (D1 files, R2 bucket
directories, KV namespaces, Workers, Pages sites, DNS rows, encrypted secrets), and the edge router
that serves them by Host under `NNO_BASE_DOMAIN`."""
