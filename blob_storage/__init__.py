"""Blob storage for reports and documents: a local folder, or S3 through boto3."""
