"""The life cycle of an ESMS numérique project and the programme's rules, declared as data.

`states.lifecycle` holds the whole declaration: states, events with their arrows, guards and selectors by name,
and each event's effects (fields recorded, amounts added, tranche released, messages sent, deadline set), and the
deadline each state waits on. `states.guards` holds the rules the guards apply, `states.machine` builds the
`transitions` machine, `states.grappe` the eligibility of a grappe, `states.money` and `states.calendar` the
arithmetic of cents and days, `states.text` the limits of text, `states.errors` the one tree of errors. Nothing
here imports `notifications` or `workflow`.
"""
