"""The gateway: an ASGI application serving the OpenAI, Anthropic and Gemini wire formats."""
