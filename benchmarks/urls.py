"""The desk's URLs plus the floor view the benchmark compares the queues with."""

from django.urls import path

from benchmarks.floor import floor
from desk.urls import urlpatterns as desk_urlpatterns

urlpatterns = [path("bench/floor/", floor, name="bench_floor"), *desk_urlpatterns]
