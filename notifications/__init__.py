"""Messages to project owners and to the programme team: templates, outbox and delivery."""
