"""AI Teams on CrewAI — the only package that imports crewai.

Importing it prepares the environment crewai needs (see ``environment``), then imports
crewai once with its import-time warnings silenced, makes crewai's reads of its own
deprecated fields quiet (both are about crewai itself, and would otherwise surface in every
process that treats warnings as errors) and gives crewai in-process locks. The API process
never imports this package.
"""

import warnings

from workers.crew.environment import LocalLocks as _LocalLocks
from workers.crew.environment import prepare as _prepare
from workers.crew.environment import silence_deprecated_fields as _silence

_prepare()  # before crewai is imported

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    import crewai
    import crewai.events.types.llm_events
    from crewai.agents.agent_builder.base_agent import BaseAgent as _BaseAgent
    from crewai_core.lock_store import set_lock_backend as _set_lock_backend

_silence(crewai.Agent, crewai.Crew, crewai.Task, _BaseAgent)
_set_lock_backend(_LocalLocks())
