"""llmswitch's SDK, offline: every call below goes over real HTTP to the built-in fake upstream.

    python examples/quickstart.py

Swap `api_base`/`api_key` for a real provider's (or drop them and set OPENAI_API_KEY,
ANTHROPIC_API_KEY, GEMINI_API_KEY) and the same code talks to the real APIs.
"""

from __future__ import annotations

from pydantic import BaseModel

import llmswitch
from llmswitch.testing import FakeUpstream, Reply


class City(BaseModel):
    name: str
    country: str


def get_weather(city: str, unit: str = "celsius") -> str:
    """The current weather in a city."""
    return f"18 degrees {unit} and sunny in {city}"


def main() -> None:
    with FakeUpstream() as up:
        bases = {"openai": up.openai_base, "anthropic": up.anthropic_base, "gemini": up.gemini_base}
        models = {
            "openai": "openai/gpt-4o-mini",
            "anthropic": "anthropic/claude-sonnet-4-20250514",
            "gemini": "gemini/gemini-2.5-flash",
        }
        question = [{"role": "user", "content": "What is 4200 + 42?"}]

        print("== one API, three providers")
        for name, model in models.items():
            up.script(Reply(text=f"4242 (answered in {name}'s wire format)"))
            r = llmswitch.completion(model, question, api_base=bases[name], api_key="sk-demo")
            print(f"{model:40} -> {r.choices[0].message.content!r}  usage={r.usage.total_tokens} tokens")

        print("\n== streaming, with a usage chunk at the end")
        up.script(Reply(text="Streaming arrives in small pieces.", chunk_size=6))
        for chunk in llmswitch.completion(
            models["anthropic"],
            question,
            api_base=up.anthropic_base,
            api_key="sk-demo",
            stream=True,
            stream_options={"include_usage": True},
        ):
            if chunk.choices and chunk.choices[0].delta.content:
                print(f"[{chunk.choices[0].delta.content}]", end="")
            if chunk.usage:
                print(f"  usage: {chunk.usage.prompt_tokens} in / {chunk.usage.completion_tokens} out")

        print("\n== structured output into a Pydantic model")
        up.script(Reply(text='{"name": "Lisbon", "country": "Portugal"}'))
        r = llmswitch.completion(
            models["gemini"],
            [{"role": "user", "content": "A city by the sea?"}],
            api_base=up.gemini_base,
            api_key="sk-demo",
            response_format=City,
        )
        print("parsed:", repr(r.choices[0].message.parsed))

        print("\n== a tool loop: the model calls get_weather, we run it, it answers")
        up.script(
            Reply(tool_calls=[("get_weather", {"city": "Lisbon"})]),
            Reply(text="It is 18 degrees and sunny in Lisbon."),
        )
        messages: list = [{"role": "user", "content": "Weather in Lisbon?"}]
        final = llmswitch.run_tools(
            models["openai"], messages, tools=[get_weather], api_base=up.openai_base, api_key="sk-demo"
        )
        for m in final.messages[1:-1]:
            print("  turn:", m["role"], m.get("content") or [t["function"]["name"] for t in m.get("tool_calls", [])])
        print("final:", final.choices[0].message.content)

        print("\n== errors keep their meaning: a 429 with Retry-After is retried, then succeeds")
        up.script(Reply(status=429, retry_after=0.2), Reply(text="made it"))
        r = llmswitch.completion(models["openai"], question, api_base=up.openai_base, api_key="sk-demo")
        print(f"answer after a rate limit: {r.choices[0].message.content!r} ({len(up.requests)} requests so far)")


if __name__ == "__main__":
    main()
