"""Sources own the I/O: files, spool folders, mailboxes, HTTP intake."""
