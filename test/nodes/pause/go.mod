module meshstor.local/pause

go 1.24
