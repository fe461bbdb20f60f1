"""Where the TUI gets its data: one :class:`~tui.client.base.CaseClient` interface,
implemented on the embedded store (:mod:`tui.client.local`) and on the analyst API
(:mod:`tui.client.remote`)."""
