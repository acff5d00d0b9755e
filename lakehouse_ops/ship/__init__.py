"""Shipping to EMR and EMR Serverless: packaging, submission, fleet planning, leases and schedules."""
