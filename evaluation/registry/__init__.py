"""MLflow packaging and the Model Registry: the pyfunc model, registration and the champion alias."""
