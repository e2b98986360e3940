"""The proGres v4 (Dataverse Web API) adapter: `adapter.ProgresAdapter`."""
