"""Files and batches: OpenAI's Files and Batch APIs and Anthropic's Message Batches, for every provider.

A batch's lines live in the store (:mod:`llmswitch.store.batch_records`). A batch whose model group has
a provider batch API is sent there (``native``); any other is run by the gateway itself
(:mod:`llmswitch.batch.runner`): its lines claimed with leases by whichever instance is free, answered
through the router, each answer written once, and the output and error files written from the store.
See docs/batch.md.
"""
