"""Deadlines: working-day calendars, deadline policies, when deadlines fall due, the overdue
scan's store functions (DESIGN.md §3, due dates)."""
