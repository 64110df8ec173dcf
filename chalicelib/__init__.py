"""FastHook: a serverless webhook gateway. See DESIGN.md for the flow and STYLE.md for the layout."""
