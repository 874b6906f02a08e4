"""Messages to project owners and to the programme team.

Templates, rendering, `.ics`, addresses, the outbox table and its storage, the relay and its transports. Nothing
here imports `workflow`.
"""
