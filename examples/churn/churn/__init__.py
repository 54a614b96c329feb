"""Steps of the churn example pipeline."""
