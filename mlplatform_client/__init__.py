"""Client-side code of the platform: what runs in users' notebooks, Airflow tasks and pods, not in the Pulumi
program. Each module depends only on the library it wraps (MLflow, ...), which the image running it carries."""
