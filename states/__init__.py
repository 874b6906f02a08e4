"""The life cycle of an ESMS numérique project, declared as data.

`states.lifecycle` holds the whole declaration (states, events, guards by name, tranche milestones, deadlines);
`states.guards` holds the programme rules the guards apply; `states.machine` builds the `transitions` machine
from the declaration.
"""
