"""`casebridge demo`: the whole gateway with five sandbox partner systems, and its stories.

`supervisor` starts and stops the processes, `setup` prepares the store, `stories` holds
the stories (data and small functions that act as staff in each system), `run` ties them.
"""
