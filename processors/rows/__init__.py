"""Row building: one module per input stream, each turning a payload into a typed batch of rows."""
