"""Safety alerts by email (SAE, overdue SAE, DLT/TI flag, death, dose-finding safety stop)."""
