"""The full-screen Textual app. Only this package imports textual; build the app with
`promptlooper_tui.tui.factory.make_app`."""
