"""What a planned stack will cost and how long its first `pulumi up` takes, and whether its Kubernetes minor
is still in standard support: estimates from the plan document and dated tables kept in this package."""
