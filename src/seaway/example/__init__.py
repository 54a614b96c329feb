"""The bundled example project (customer churn) and its synthetic data."""
