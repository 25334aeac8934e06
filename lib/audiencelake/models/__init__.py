"""Models on the profile (Spark MLlib), tracked in MLflow: segmentation, churn, CLV, recommendations, propensity."""
