"""The month's statistics as pictures: charts and maps on the real census geography."""
