"""Simulation exercises: scenarios, injects through the live pipeline, bots, scoring, reports.

The engine never imports the pipeline or the server (ARCHITECTURE "Exercises inject through the
front door"): the composition root (:mod:`pukara.exercise_runtime`) hands it a ``deliver``
function and starts the HTTP API the bots answer through.
"""
