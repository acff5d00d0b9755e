"""Right-to-be-forgotten erasure: find a subject's rows in every configured table, delete them, make the old bytes
physically gone (rewritten files, expired snapshots, removed orphans), verify, and write a receipt."""
