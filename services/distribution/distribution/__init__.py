"""Distribution: releases and updates with their files, entitlement, downloads, the update
check for the desktop program, DVD shipments, documents, news & events, training courses."""
