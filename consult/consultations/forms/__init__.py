"""Forms of the consultations domain, one module per part of the method."""
