module gabarit

go 1.26
