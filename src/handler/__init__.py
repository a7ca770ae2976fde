"""The Lambda entry point (`handler.app.lambda_handler`)."""
