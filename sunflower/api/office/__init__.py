"""GraphQL for the office applications on the workflow engine.

Each application has its module (engine: inboxes, tasks, instances, definitions; supervision; the
official documents and meetings in their own); schema.py merges their Query and Mutation classes.
Nothing here imports the engine's SpiffWorkflow side: the container builds it on first use.
"""
