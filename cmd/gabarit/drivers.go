package main

import _ "gabarit/internal/store/drivers" // the command opens stores: SQLite files and PostgreSQL databases
