"""The deployment flow's logic (dags/deploy_model.py wraps it in Airflow tasks): plain Python on `requests`
and the `kubernetes` client, both in the Airflow image, so it runs and is tested without Airflow.

Shipped beside the DAG in the platform's DAG ConfigMap as a package directory (components/lifecycle/airflow.py
platform_dag_files), with the one copy of MLflow 3's version -> storage URI resolution it shares with users'
code (mlplatform_client/models.py)."""
