"""Ticket and receipt PDFs and email bodies: pure rendering, bytes and strings out, no I/O.

Import the submodules (`documents.models`, `documents.ticket_pdf`, `documents.email_templates`);
this package stays empty so that importing the models does not load fpdf2 or Jinja2.
"""
