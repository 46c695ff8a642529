"""The gateway's one call into guardrails: the run for a request, from the configured guardrails, the
key's and its team's (``metadata.guardrails``, as LiteLLM keeps them) and the request's ``guardrails``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from llmswitch.guardrails.run import Run, _invalid

if TYPE_CHECKING:
    from llmswitch.server.app import Gateway
    from llmswitch.server.http import Request


def start_for_request(gw: Gateway, request: Request, principal: Any, requested: Any) -> Run | None:
    """The guardrails run of this request, or ``None`` when none applies; its decisions are kept in
    ``request.state["guardrails"]`` (for the spend record and metrics)."""
    gs = gw.guardrails
    if gs is None:
        if requested:
            raise _invalid("guardrails", "no guardrails are configured on this gateway")
        return None
    rec = getattr(principal, "record", None)
    key: list[str] = []
    team: list[str] = []
    if rec is not None:
        key = _listed(rec.metadata)
        if rec.team_id:
            sub = gw.subjects.get("team", rec.team_id)
            if sub is not None:
                team = _listed(sub.metadata)
    run = gs.start(requested=requested, key=key, team=team, metadata={"request_id": request.state.get("spend_id")})
    if run is not None:
        request.state["guardrails"] = run.decisions
    return run


def _listed(metadata: Any) -> list[str]:
    names = metadata.get("guardrails") if isinstance(metadata, dict) else None
    return [n for n in names if isinstance(n, str)] if isinstance(names, list) else []
