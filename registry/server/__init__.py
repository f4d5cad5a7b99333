"""The registry server (``modelreg server``): REST API, auth, the event feed, webhooks."""
