"""The ticketing domain: plain models, state machines and policies.

Nothing in here imports Temporal, FastAPI or a vendor SDK, so the API and the
workflows can ask the same questions and get the same answers.
"""
