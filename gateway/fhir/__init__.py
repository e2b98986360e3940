"""The FHIR R4 face of the gateway: referrals as Task + ServiceRequest + Patient + Consent
for health partners (docs/fhir.md)."""
