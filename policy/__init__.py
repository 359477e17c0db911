"""The platform's policy pack: rules that state, once, what a stack of this program promises (it cannot
expose data, cannot lose it by accident, meets the design's HA table in prod).

The same rule functions run in three places: under the Pulumi CLI as a CrossGuard pack
(`pulumi preview --policy-pack policy`, built in `policy/__main__.py`), over the offline plan in
`python -m mlplatform plan`, and in the test suite. They see resources through `policy.view` only, so
nothing here imports `pulumi_policy` except the pack's entry point (`policy/pack.py`).
"""
