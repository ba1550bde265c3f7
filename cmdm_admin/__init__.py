"""cmdm_admin: validate, render, deploy and administer cmdm, the customer master data
that PostgreSQL itself keeps current after each monthly ETL load."""

__version__ = "0.1.0"
