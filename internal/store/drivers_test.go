package store

import _ "gabarit/internal/store/drivers" // the tests open stores
