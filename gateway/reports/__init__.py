"""Reports over the store for the people who run and monitor referral pathways: aggregates
only, never a person (DESIGN.md §2, reports)."""
