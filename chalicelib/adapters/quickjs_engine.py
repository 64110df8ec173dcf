"""The Transformer port on quickjs-ng: user JavaScript runs in a sandbox that holds nothing of the host.

What a bare quickjs-ng Context offers was checked by hand (see tests/unit/test_quickjs_engine.py):
the ECMAScript built-ins plus `queueMicrotask`, `btoa`/`atob`, `DOMException` and `performance`;
no `require`, `fetch`, timers, `std`/`os` modules (`import` of any module fails: there is no module
loader), no `process`, no `console`, and `Atomics.wait` cannot block. We remove `performance` (a
high-resolution host clock with the process start time) and add only what the contract names:
`addHandler`, a capturing `console` and `process.env` (a copy of the transformation's env). No
Python callable is ever handed to the context, so user code has no path back into the host.

Limits per run: CPU time (the context's time limit, measured with the process-wide clock() and
polled by QuickJS every few thousand operations: plain loops stop at the limit, but a loop of heavy
native calls on large buffers can run seconds past it, ~16 s measured for 30 MB fills; the Lambda
timeout is the backstop), memory (the runtime's allocation cap), code size and output size; a breach is a
TransformationError carrying the console lines logged before it, and the context of a failed run is
dropped so the next run starts clean.

Speed: compiling is the expensive part, so each thread keeps a few contexts warm, keyed by code and
env (a context is never shared by two transformations that differ in either, so one team's code
cannot see another's state). The user's top-level code is compiled once into a function and run
again on every call, so top-level `let`s start fresh each run; only explicit writes to `globalThis`
survive between runs of the same code and env. Contexts are per thread because a QuickJS runtime
must only ever be used by the thread that made it.
"""

from __future__ import annotations

import json
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Final

import quickjs

from chalicelib.domain.models import MAX_CODE_BYTES
from chalicelib.domain.transforms import TransformationError, TransformResult

MIB: Final = 1024 * 1024
LOG_LEVELS: Final = ("log", "info", "warn", "error", "debug")
# One encoder for every run (json.dumps with options builds a new one per call).
_ENCODE: Final = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, default=str).encode


@dataclass(frozen=True)
class SandboxLimits:
    cpu_time_s: float = 1.0  # CPU seconds per run (QuickJS measures with clock())
    memory_bytes: int = 64 * MIB  # the runtime's allocation cap, code and data together
    code_bytes: int = MAX_CODE_BYTES  # 5 MB, as the transformations API accepts
    output_bytes: int = 10 * MIB  # the returned request as JSON, like the inbound body limit
    stack_bytes: int = 512 * 1024  # deep recursion becomes a RangeError, well inside the thread's stack
    log_lines: int = 100  # console lines kept per run; later ones are counted, not kept
    log_line_chars: int = 4096  # one console line is cut after this many characters
    warm_contexts: int = 8  # compiled contexts kept per thread (LRU)


# Defines the sandbox's globals once per context. Everything the runner needs is captured here, so
# user code replacing JSON.stringify or Object.defineProperty later cannot change what it reports.
# A run answers "R<logs JSON>\n<request JSON>", "P" (an async handler: settle after the jobs ran) or
# "F<message>" (the code broke the contract); JSON text never holds a raw newline.
_BOOTSTRAP: Final = r"""
((baseEnv) => {
  "use strict";
  const { parse, stringify } = JSON;
  const { assign, create, defineProperty, freeze } = Object;
  const MAX_LINES = %(log_lines)d, MAX_CHARS = %(log_line_chars)d, MAX_OUTPUT = %(output_bytes)d;
  const global = globalThis;
  delete global.performance;
  let handlers = create(null), logs = [], dropped = 0, settled = null;

  const show = (value) => {
    try {
      if (typeof value === "string") return value;
      if (value instanceof Error) return String(value.name) + ": " + String(value.message);
      const text = stringify(value);
      return text === undefined ? String(value) : text;
    } catch (e) {
      try { return String(value); } catch (e2) { return "[unprintable]"; }
    }
  };
  const logger = (level) => (...args) => {
    if (logs.length >= MAX_LINES) { dropped++; return; }
    let message = args.map(show).join(" ");
    if (message.length > MAX_CHARS) message = message.slice(0, MAX_CHARS) + "…";
    logs.push({ level, message });
  };
  const takeLogs = () => {
    if (dropped > 0) {
      const message = dropped + " more console lines were dropped (at most " + MAX_LINES + " are kept per run)";
      logs.push({ level: "warn", message });
      dropped = 0;
    }
    return stringify(logs);
  };
  const process = { env: null };
  const globals = {
    console: freeze({
      log: logger("log"), info: logger("info"), warn: logger("warn"), error: logger("error"), debug: logger("debug"),
    }),
    addHandler: (name, handler) => {
      if (typeof handler !== "function") throw new TypeError("addHandler(name, handler): handler must be a function");
      handlers[String(name)] = handler;
    },
    process,
  };
  for (const name in globals) {
    defineProperty(global, name, { value: globals[name], writable: true, configurable: true, enumerable: false });
  }

  // Answers are joined, never concatenated: quickjs-ng keeps long concatenations as ropes, which the
  // Python binding cannot convert.
  const fail = (message) => ["F", message].join("");
  const envelope = (value) => {
    if (value === undefined) {
      return fail("the transform handler returned undefined; return the request (or a changed copy)");
    }
    const request = stringify(value);
    if (request === undefined) {
      return fail("the transform handler returned a " + typeof value + ", not a request object");
    }
    if (request.length > MAX_OUTPUT) {
      return fail("the transformed request is larger than " + MAX_OUTPUT / 1048576 + " MiB");
    }
    return ["R", takeLogs(), "\n", request].join("");
  };
  const runner = {
    compile: (code) => new Function(code),
    run: (factory, input) => {
      const given = parse(input);
      handlers = create(null); logs = []; dropped = 0; settled = null;
      process.env = assign({}, baseEnv);  // a run may change its env; the next one starts from the stored env
      factory();
      const handler = handlers.transform;
      if (handler === undefined) {
        return fail(
          "the code registers no transform handler: call addHandler('transform', (request, context) => request)"
        );
      }
      const result = handler(given.request, given.context);
      if (result !== null && typeof result === "object" && typeof result.then === "function") {
        result.then((value) => { settled = { value }; }, (error) => { settled = { error }; });
        return "P";
      }
      return envelope(result);
    },
    settle: () => {
      if (settled === null) {
        return fail("the transform handler's promise never settled (there are no timers or I/O to wait for)");
      }
      if ("error" in settled) throw settled.error;
      return envelope(settled.value);
    },
    logs: () => [takeLogs()].join(""),
  };
  for (const name in runner) {
    const sealed = { value: runner[name], writable: false, configurable: false, enumerable: false };
    defineProperty(global, "__fasthook_" + name + "__", sealed);
  }
})(%(env)s);
"""


class _Warm:
    """One context with the runner installed, the env set and the user's code compiled into a function."""

    def __init__(self, code: str, env: dict[str, str], limits: SandboxLimits) -> None:
        self.context = quickjs.Context()
        self.context.set_memory_limit(limits.memory_bytes)
        self.context.set_max_stack_size(limits.stack_bytes)
        self.context.set_time_limit(limits.cpu_time_s)
        settings = {
            "log_lines": limits.log_lines,
            "log_line_chars": limits.log_line_chars,
            "output_bytes": limits.output_bytes,
            "env": json.dumps({str(k): str(v) for k, v in env.items()}),
        }
        self.context.eval(_BOOTSTRAP % settings)
        # Taken once: user code can neither enumerate these globals nor replace them.
        self.run = self.context.get("__fasthook_run__")
        self.settle = self.context.get("__fasthook_settle__")
        self.logs = self.context.get("__fasthook_logs__")
        self.pending_jobs = self.context.execute_pending_job
        self.factory = self.context.get("__fasthook_compile__")(code)


class QuickJsTransformer:
    """Runs `addHandler('transform', (request, context) => request)` code; one instance per process."""

    def __init__(self, limits: SandboxLimits | None = None) -> None:
        self.limits = limits or SandboxLimits()
        self._local = threading.local()

    def transform(
        self, *, code: str, env: dict[str, str], request: dict[str, Any], context: dict[str, Any]
    ) -> TransformResult:
        started = time.perf_counter()
        if len(code) > self.limits.code_bytes or len(code.encode()) > self.limits.code_bytes:
            raise TransformationError(f"the code is larger than {self.limits.code_bytes / MIB:g} MB")
        key = (code, tuple(sorted(env.items())))
        warm = self._warm(key, code, env)
        payload = _ENCODE({"request": request, "context": context})
        try:
            answer: str = warm.run(warm.factory, payload)
            # Promise jobs (an async handler, a stray `.then`) run now, inside this run's budget, so
            # none is left queued in a warm context for the next run.
            self._run_jobs(key, warm, started)
            if answer == "P":
                answer = warm.settle()
        except quickjs.JSException as exc:
            raise self._failure(key, warm, exc) from None
        if answer.startswith("F"):
            raise TransformationError(answer[1:], logs=self._logs(warm))
        logs, _, output = answer[1:].partition("\n")
        returned = self._read_output(output, logs)
        return TransformResult(
            request=returned, logs=_levelled(logs), duration_ms=round((time.perf_counter() - started) * 1000, 3)
        )

    # ---- warm contexts ----------------------------------------------------------------------------

    def _cache(self) -> OrderedDict[Any, _Warm]:
        cache: OrderedDict[Any, _Warm] | None = getattr(self._local, "cache", None)
        if cache is None:
            cache = self._local.cache = OrderedDict()
        return cache

    def _warm(self, key: Any, code: str, env: dict[str, str]) -> _Warm:
        cache = self._cache()
        warm = cache.get(key)
        if warm is not None:
            cache.move_to_end(key)
            return warm
        try:
            warm = _Warm(code, env, self.limits)
        except quickjs.JSException as exc:
            # Compiling counts against the same limits; a SyntaxError is the common case.
            raise TransformationError(self._describe(exc)) from None
        cache[key] = warm
        while len(cache) > self.limits.warm_contexts:
            cache.popitem(last=False)
        return warm

    def warm_count(self) -> int:
        """Contexts kept warm by the calling thread (for tests and benchmarks)."""
        return len(self._cache())

    # ---- a run's end ------------------------------------------------------------------------------

    def _run_jobs(self, key: Any, warm: _Warm, started: float) -> None:
        # Each job gets QuickJS's own CPU limit; this deadline bounds an endless chain of short jobs.
        deadline = started + self.limits.cpu_time_s
        while warm.pending_jobs():
            if time.perf_counter() > deadline:
                self._cache().pop(key, None)
                raise TransformationError(self._too_long(), logs=self._logs(warm))

    def _read_output(self, text: str, logs: str) -> object:
        limit = self.limits.output_bytes
        # Characters are at most 4 bytes, so the exact (encoding) check runs only when it could fail.
        if len(text) > limit or (len(text) * 4 > limit and len(text.encode()) > limit):
            raise TransformationError(
                f"the transformed request is larger than {limit / MIB:g} MiB", logs=_levelled(logs)
            )
        return json.loads(text)

    def _logs(self, warm: _Warm) -> list[dict[str, str]]:
        try:
            return _levelled(warm.logs())
        except quickjs.JSException:
            return []  # out of memory even for the capped copy of the lines

    def _failure(self, key: Any, warm: _Warm, exc: quickjs.JSException) -> TransformationError:
        logs = self._logs(warm)
        # A breached limit can leave the heap near its cap, and a throw can leave promise jobs queued
        # that would run inside the next run: the next run of this code starts on a fresh context.
        self._cache().pop(key, None)
        return TransformationError(self._describe(exc), logs=logs)

    def _describe(self, exc: quickjs.JSException) -> str:
        first = _first_line(exc)
        if first.startswith("InternalError: interrupted"):
            return self._too_long()
        if first.startswith("InternalError: out of memory"):
            return f"the transformation used more than {self.limits.memory_bytes / MIB:g} MiB of memory"
        if isinstance(exc, quickjs.StackOverflow) or first.startswith("RangeError: Maximum call stack size"):
            return "the transformation recursed too deeply (maximum call stack size exceeded)"
        if first in ("", "null"):
            # QuickJS throws null when it cannot even allocate the error object.
            return f"the transformation threw null or ran out of memory ({self.limits.memory_bytes / MIB:g} MiB)"
        return first

    def _too_long(self) -> str:
        return f"the transformation ran longer than {self.limits.cpu_time_s:g} s of CPU time"


def _first_line(exc: quickjs.JSException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0].strip() if text else ""


def _levelled(text: str) -> list[dict[str, str]]:
    """The `{level, message}` lines of the runner's JSON (`[]` costs nothing to read)."""
    if text == "[]":
        return []
    return [line for line in json.loads(text) if isinstance(line, dict) and line.get("level") in LOG_LEVELS]
