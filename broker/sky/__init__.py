"""Sky maps: pure kernels, map reading, GCN notices, localizations and crossmatches."""
