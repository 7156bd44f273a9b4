"""Sending email: one Protocol (`base.EmailProvider`), SMTP and SES implementations.

Import from the submodules; this package stays empty so that importing `base` does not
load boto3 or aiosmtplib.
"""
