"""AI Teams on CrewAI — the only package that imports crewai.

Importing it prepares the environment crewai needs (see ``environment``) before any of its
modules imports crewai; the API process never imports this package.
"""

from workers.crew.environment import prepare as _prepare

_prepare()
