"""Pseudonymization: tokens (cipher), the reference service, the service client, and the Spark integration."""
