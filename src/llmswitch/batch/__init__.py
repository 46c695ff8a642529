"""Files and batches: OpenAI's Files and Batch APIs and Anthropic's Message Batches, run natively at the
provider where it has a batch API (:mod:`llmswitch.batch.native`) and by the gateway where it has not."""
