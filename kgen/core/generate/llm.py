"""The llm generator: an OpenAI-compatible chat endpoint, spoken with the standard library only.

A designer call plans n implementations, a coder call per plan writes ModelNew; repairs send the
verifier's feedback back; evolve rounds show the best candidates so far. Every prompt and reply
goes to `message_sink(role, content)` (run_job points it at the job's stored conversation).
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, Callable

from kgen.core.errors import BadInput, KgenError, Unreachable
from kgen.core.generate import llm_prompts as prompts
from kgen.core.generate.candidate import Candidate

if TYPE_CHECKING:
    from kgen.core.task import Task
    from kgen.core.verify.verdict import Verdict

RETRY_STATUSES = (408, 409, 429, 500, 502, 503, 504)
MAX_PARALLEL_CALLS = 8


class LLMGenerator:
    name = "llm"

    def __init__(self, base_url: str | None = None, model: str | None = None, api_key: str | None = None, *,
                 timeout_s: float = 300.0, temperature: float = 0.7, max_tokens: int | None = None,
                 max_retries: int = 3, retry_base_s: float = 1.0,
                 message_sink: Callable[[str, str], None] | None = None):
        from kgen.core import config

        base_url = base_url or config.resolve("llm.base_url")[0]
        model = model or config.resolve("llm.model")[0]
        api_key = api_key if api_key is not None else config.resolve("llm.api_key")[0]
        missing = [name for name, value in (("llm.base_url", base_url), ("llm.model", model)) if not value]
        if missing:
            raise BadInput(f"the llm generator needs {' and '.join(missing)}: set them with `kgen config set` "
                           "or $KGEN_LLM_BASE_URL / $KGEN_LLM_MODEL (key: $KGEN_LLM_API_KEY)")
        if not base_url.startswith(("http://", "https://")):
            raise BadInput(f"llm.base_url must be an http:// or https:// URL, got {base_url!r}")
        self.endpoint = base_url.rstrip("/") + "/chat/completions"
        self.model = model
        self._api_key = api_key or ""
        self.timeout_s = timeout_s
        self.temperature = temperature
        self.max_tokens = max_tokens
        self.max_retries = max_retries
        self.retry_base_s = retry_base_s
        self.message_sink = message_sink

    # -- protocol ----------------------------------------------------------------
    def _record(self, role: str, content: str) -> None:
        if self.message_sink is not None:
            self.message_sink(role, content)

    def _post(self, payload: dict[str, Any]) -> dict[str, Any]:
        data = json.dumps(payload).encode()
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self._api_key:
            headers["Authorization"] = f"Bearer {self._api_key}"
        for attempt in range(self.max_retries + 1):
            request = urllib.request.Request(self.endpoint, data=data, headers=headers, method="POST")
            delay = min(self.retry_base_s * 2 ** attempt, 30.0)
            try:
                with urllib.request.urlopen(request, timeout=self.timeout_s) as resp:
                    body = resp.read()
            except urllib.error.HTTPError as exc:
                detail = exc.read(400).decode("utf-8", "replace").strip()
                if exc.code in RETRY_STATUSES and attempt < self.max_retries:
                    retry_after = exc.headers.get("Retry-After", "")
                    if retry_after.replace(".", "", 1).isdigit():
                        delay = min(float(retry_after), 60.0)
                    time.sleep(delay)
                    continue
                if exc.code in (401, 403):
                    raise KgenError(f"llm endpoint {self.endpoint} refused the API key (HTTP {exc.code}); "
                                    "check llm.api_key / $KGEN_LLM_API_KEY", code="llm_unauthorised") from None
                raise KgenError(f"llm endpoint {self.endpoint} answered HTTP {exc.code}: {detail[:300]}",
                                code="llm_error") from None
            except (urllib.error.URLError, ConnectionError, TimeoutError) as exc:
                if attempt < self.max_retries:
                    time.sleep(delay)
                    continue
                reason = getattr(exc, "reason", exc)
                raise Unreachable(f"cannot reach llm endpoint {self.endpoint}: {reason}") from None
            try:
                return json.loads(body)
            except ValueError:
                raise KgenError(f"llm endpoint {self.endpoint} did not answer JSON: {body[:200]!r}",
                                code="llm_error") from None
        raise AssertionError("unreachable")

    def chat(self, stage: str, user: str) -> str:
        """One chat completion (system + user message); records both prompts and the reply."""
        messages = [{"role": "system", "content": prompts.SYSTEM}, {"role": "user", "content": user}]
        payload: dict[str, Any] = {"model": self.model, "messages": messages, "temperature": self.temperature}
        if self.max_tokens:
            payload["max_tokens"] = self.max_tokens
        self._record(f"{stage}.system", prompts.SYSTEM)
        self._record(f"{stage}.user", user)
        reply = self._post(payload)
        try:
            content = reply["choices"][0]["message"]["content"]
            if not isinstance(content, str):
                raise TypeError
        except (KeyError, IndexError, TypeError):
            raise KgenError(f"llm endpoint {self.endpoint} sent a reply without choices[0].message.content: "
                            f"{json.dumps(reply)[:200]}", code="llm_error") from None
        self._record(f"{stage}.assistant", content)
        return content

    # -- Generator ---------------------------------------------------------------
    def code(self, task: Task, plans: list[str], stage: str, base: Candidate | None) -> list[Candidate]:
        """One coder call per plan (in parallel), each a candidate built on `base` when given."""
        def one(plan: str) -> Candidate | None:
            reply = self.chat("coder", prompts.coder(task.source, plan, base.source if base else None))
            source = prompts.extract_code(reply)
            if source is None:
                return None
            return Candidate(source=source, params={"stage": stage, "plan": plan[:2000], "model": self.model},
                             origin="llm", parent=base.sha if base else None, notes=plan.strip().splitlines()[0][:200])

        with ThreadPoolExecutor(max_workers=min(len(plans), MAX_PARALLEL_CALLS) or 1) as pool:
            made = [c for c in pool.map(one, plans) if c is not None]
        if plans and not made:
            raise KgenError("the llm replied without a python code block defining ModelNew", code="llm_no_code")
        return made

    def initial(self, task: Task, n: int) -> list[Candidate]:
        plans = prompts.split_plans(self.chat("designer", prompts.designer(task.source, n)), n)
        if not plans:
            raise KgenError("the llm designer returned an empty plan", code="llm_error")
        return self.code(task, plans, "initial", None)

    def mutate(self, task: Task, best: list[tuple[Candidate, Verdict]], n: int) -> list[Candidate]:
        if not best:
            return self.initial(task, n)
        reply = self.chat("designer", prompts.designer_evolve(task.source, best, n))
        plans = prompts.split_plans(reply, n)
        return self.code(task, plans, "mutate", best[0][0]) if plans else []

    def repair(self, task: Task, candidate: Candidate, verdict: Verdict) -> Candidate | None:
        reply = self.chat("repair", prompts.repair(task.source, candidate.source, verdict))
        source = prompts.extract_code(reply)
        if source is None:
            return None
        return Candidate(source=source, params={"stage": "repair", "model": self.model}, origin="llm",
                         parent=candidate.sha, notes=f"repair after {verdict.status}")
